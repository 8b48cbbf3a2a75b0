"""Tax lots: which lots a sale relieves, their gains and tax (``_tax``)."""
