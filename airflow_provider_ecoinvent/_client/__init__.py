"""The client core, private as a whole: one request state machine and the decisions both transports share.

Nothing here sends a request or sleeps: the sync hook (``requests``) and the async client (``httpx``)
drive :mod:`.call` and take their decisions (retries, tokens, errors, request safety, network failures,
CA trust) from the modules beside it, so the worker and the triggerer cannot drift apart. Importing this
package imports nothing (DAG files import the operators at parse time); the few reads there are (a CA
bundle's path, Airflow's version for the User-Agent) happen when a call needs them.
"""
