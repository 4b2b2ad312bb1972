"""Typed events, the response projection, the reducer, and live pub/sub.

Every turn is an append-only log of these events; everything a client sees is derived
from it by `reducer.apply`.
"""
