"""Execution: an opportunity taken as a trade of two legs, placed at once, settled in the ledger.

`sizing` (pure maths), `trades` (record, place, settle), `orders` (the venues), `settlement`
(fills into the ledger), `hedging` (an imbalance closed), `recovery` (a stopped worker's trades),
`desk` (the desk state and risk re-checks), `paper` (the simulated venue).
"""
