"""The prepare stage's pieces: the request as arrays (``_data``), the one model description
(``_model``) and the terms that state it (``_terms``)."""
