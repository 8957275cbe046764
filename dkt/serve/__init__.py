"""``dkt serve``: the harmonizer over HTTP, its web page, and the user-study page.

Built on FastAPI (the optional extra ``dkt[serve]``); nothing here imports Typer, and the
command line only parses options and starts uvicorn.
"""
