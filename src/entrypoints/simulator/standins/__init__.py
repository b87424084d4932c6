"""Local stand-ins for the services Agent Stream talks to (the Cloudonix REST API, an OpenAI-compatible
API), shipped so that `agent-stream demo` works offline and the tests drive the real clients against
real HTTP."""
