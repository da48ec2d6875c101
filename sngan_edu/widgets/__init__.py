"""ipywidgets controls, one module per notebook; callbacks call plain library functions."""
