-- Written once for both engines: the rules that hold across processes live here.

-- "Charged at most once": an invoice holds at most one pending, requires_action or
-- succeeded payment. Declined and failed ones do not count, so the payer may retry.
-- Keep the status list in step with inboxpay.store.model.ACTIVE_STATUSES.
CREATE UNIQUE INDEX payments_one_active_per_invoice ON payments (invoice_key)
    WHERE status IN ('pending', 'requires_action', 'succeeded');

CREATE UNIQUE INDEX payment_methods_owner_fingerprint ON payment_methods (owner, fingerprint);

CREATE INDEX payments_owner_created ON payments (owner, created_at);
CREATE INDEX payments_created ON payments (created_at);
CREATE INDEX payments_status_updated ON payments (status, updated_at);
CREATE INDEX attempts_lookup ON attempts (owner, kind, subject, at);
