"""devhost: serves a Python v2 `azure.functions.FunctionApp` on this machine the way Azure Functions Core Tools
(`func start`) would, because Core Tools cannot be installed here (its installer downloads a binary).

Run it with `python -m devhost --app function_app:app`. It reads local.settings.json and host.json, serves HTTP
triggers under /api, Event Grid triggers at /runtime/webhooks/eventgrid, the admin API under /admin, fires timers and
polls storage queues. Function inputs are built with azure.functions' own converters, the ones the Python worker uses.
"""
