"""The reference order service: VIP customers' orders are processed before regular ones."""
