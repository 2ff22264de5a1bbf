"""The ceiling bench/load.py compares the app with: bare FastAPI, one endpoint answering tiny JSON, run by
the same uvicorn with the same settings and worker count (no database, no middleware, no template)."""

from fastapi import FastAPI

app = FastAPI()


@app.get("/")
async def ping() -> dict[str, bool]:
    """Tiny JSON, as fast as the framework answers anything."""
    return {"ok": True}
