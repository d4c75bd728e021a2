-- One invoice is one invoice: its key was partner, account and number, and the account
-- may be empty or the customer's account id, so two merchants' INV-1001 were one invoice.
-- The key is now partner, account, merchant name, number, amount in minor units and
-- currency, joined by U+001F (inboxpay.sidecar.review.invoice_key). Rewrite the old keys
-- (partner U+001F account U+001F number) from what each payment recorded; the new keys
-- only refine the old ones, so the one-active-payment index still holds.
UPDATE payments SET invoice_key =
    substr(invoice_key, 1,
        length(invoice_key) - length(details::jsonb ->> 'invoice_number') - 1)
    || chr(31) || (details::jsonb ->> 'merchant')
    || chr(31) || (details::jsonb ->> 'invoice_number')
    || chr(31) || CAST(amount_minor AS TEXT)
    || chr(31) || currency
WHERE details::jsonb ->> 'merchant' IS NOT NULL
    AND details::jsonb ->> 'invoice_number' IS NOT NULL
    AND length(invoice_key) - length(replace(invoice_key, chr(31), '')) = 2
    AND substr(invoice_key, length(invoice_key) - length(details::jsonb ->> 'invoice_number'))
        = chr(31) || (details::jsonb ->> 'invoice_number');
