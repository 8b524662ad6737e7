"""bilicrawl's spiders, one module per entity."""
