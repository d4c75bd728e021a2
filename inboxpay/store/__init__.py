"""Storage: the Store protocol (api), its row types (model) and the SQL engines below it.

Open one with :func:`inboxpay.store.engine.open_store`.
"""
