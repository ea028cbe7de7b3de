"""Accounts, balances, the ledger, PnL and exposure."""
