"""Who brought a customer: customers and the claims that attribute them (codes, clicks, links,
coupons, installs, downloads), partners and their enrolment, referral holders over time
(`referrals.holder_at`) and the referral counts the dashboard reads."""
