# On PYTHONPATH, this hides the installed uvloop, so uvicorn falls back to its pure-Python default:
# the "before" of the uvloop + httptools change (bench/prototypes/compare.py, bench/profile.py).
raise ImportError("uvloop hidden by bench/prototypes/without_fastio")
