"""The closed loop: collected data → drift monitoring → labelled feedback → retraining."""
