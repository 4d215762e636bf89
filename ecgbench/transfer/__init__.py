"""Transferability: scores of an upstream checkpoint on a downstream set from one forward pass, no fine-tuning."""
