"""Reference applications for ``benchmarks.server``: the fastest ways to answer the same JSON POST
that ``manticore serve`` answers, served by uvicorn with the same settings (uvloop, httptools, access
log off). They do no exchange work: they bound what the HTTP stack alone allows on this machine."""
