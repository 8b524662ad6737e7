"""bilicrawl: a Scrapy project that crawls Bilibili's public web APIs."""
