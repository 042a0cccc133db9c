"""gemctl's parts (tools/gemctl): metrics scraping, status and top, the preflight check, the plot."""
