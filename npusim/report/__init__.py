"""Reports: the Result and its tables (result), exporters (export), plots, Chrome traces
(trace) and Jupyter HTML (html)."""

__all__: list[str] = []
