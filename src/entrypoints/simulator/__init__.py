"""The other side of the wire, simulated: what Agent Stream talks to, shipped so that `agent-stream
call` and `agent-stream demo` work offline and the tests drive real clients over real sockets.

- `caller*` modules: the Cloudonix side of a call (`agent-stream call`): the caller's session on the
  WebSocket (`caller_session`, framing what it sends with the server's own codec,
  `adapters.media.twilio.caller`), its turn-taking
  (`caller_script`), what it hears (`caller_ear`), its audio in and out (`caller_audio`, with the
  built-in phrase in `assets/`), its options and masked URL (`caller_options`), its console
  (`caller_console`), and the command's glue (`caller`).
- `standins/`: stand-in servers for the services Agent Stream calls out to, on loopback ports: the
  Cloudonix REST API (`cloudonix_api`, run by `demo`) and the OpenAI-compatible STT/LLM/TTS API
  (`openai_api`), on a shared ASGI/uvicorn base (`server`).
"""
