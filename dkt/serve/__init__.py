"""``dkt serve``: the harmonizer over HTTP, its web page, and the user-study page.

Built on FastAPI (the optional extra ``dkt[serve]``); nothing here imports Typer.
:mod:`~dkt.serve.launch` binds, loads and runs uvicorn; the command line parses, calls it
and prints the address.
"""
