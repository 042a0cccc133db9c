"""The tools' library: gemctl's parts (metrics scraping, status and top, the preflight check, the plot)
and the NVML calls gemctl check and launch-backend.py's GPU discovery share."""
