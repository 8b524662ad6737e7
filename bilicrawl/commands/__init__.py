"""bilicrawl's Scrapy commands (``COMMANDS_MODULE``)."""
