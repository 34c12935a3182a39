"""`xtok inbox`: the relay's inbox as a page served by the approver's own xtok on loopback.

The browser only shows and asks: it never holds AWS credentials or an unsealed token. Minting,
sealing and verifying the runs' proofs happen in this process, as with `xtok approve`.
"""
