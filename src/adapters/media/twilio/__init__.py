"""The Twilio-compatible media-stream wire format (Cloudonix speaks it), in one place.

- `handshake`: `connected` and `start` -> the domain's `StreamStart` (JSON with size and depth
  limits; hostile identifiers refused 4400). `TwilioHandshakeReader` is the application's
  `HandshakeReader`.
- `inbound`: a media-phase message -> the domain's `AudioIn`/`DtmfIn`/`MarkIn`/`StopIn`, or a
  counted `BadFrame`.
- `outbound`: `OutboundFramer`, the server's `media`/`mark`/`clear` messages.
- `caller`: the provider's side (what Cloudonix sends): builders of `connected`, `start`, `media`,
  `dtmf`, `mark` and `stop`, for the call simulator and the tests.

Four modules rather than one: together they are over 600 lines, and each side is read on its own.
`adapters.media` never imports the application: the reader fits the port by its shape.
"""
