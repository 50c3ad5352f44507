"""RADIUS on the wire, shared by the server's client and the mock: packet codes and attribute
types (``codes``), parsing and framing (``packet``), the attribute dictionary (``dictionary``),
the authenticators (``authenticators``) and password hiding (``passwords``).

It depends on neither program nor on an event loop, so both can use it and tests can drive it
with plain bytes.
"""
