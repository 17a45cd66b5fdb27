"""Paying partners, one way on top of the ledger: when (`policy`), the payout state machine
(`states`), creating payouts (`requests`, `automatic`, `sweep`), the gateway a connector provides
(`gateway`), PayPal batches (`batches`), the send jobs (`sending`) and providers' answers
(`answers`)."""
