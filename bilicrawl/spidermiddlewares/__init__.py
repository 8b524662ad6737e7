"""bilicrawl's spider middlewares."""
