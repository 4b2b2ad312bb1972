"""`mlagent`'s terminal client: it talks to a server over the public HTTP API only.

`api` (requests and the error envelope), `stream` (a resumable event stream), `live` (what a
turn looks like while it runs: a terminal transcript with a live footer, or JSON lines),
`views` (whole objects: `show`, `ls`, `usage`), `text` (formatting both share), `commands`
(the subcommands).
Nothing here imports the server's modules: the wire protocol is the contract.
"""
