"""`mlagent`'s terminal client: it talks to a server over the public HTTP API only.

`api` (requests and the error envelope), `stream` (a resumable event stream), `render`
(what a turn looks like in a terminal, or as JSON lines), `commands` (the subcommands).
Nothing here imports the server's modules: the wire protocol is the contract.
"""
