"""The OpenAI-compatible HTTP gateway (``cato-mq gateway``): what editors and the ``openai``
client speak, in front of ``cato_mq.submit``.

* ``app``: the Starlette application (``build``), its routes, and ``serve`` on uvicorn;
* ``service``: one request's path: checks, submit, the stream or the whole answer, cancel;
* ``streams``: one blocking ``XREAD`` for all open requests of the process;
* ``schemas``: the OpenAI request bodies; ``responses``: the bodies and SSE chunks sent back;
* ``models``: the pools and kinds offered as models; ``prompts``: FIM and chat templates;
* ``auth``: API keys; ``errors``: refusals in OpenAI's shape.

It may import the public face, ``policy``, ``state``, ``fleet``, ``metrics`` (for
``/metrics``) and the engine's text-only guard and timing model; the worker and beat never
import it.
"""
