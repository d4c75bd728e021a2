-- One invoice is one invoice: its key was partner, account and number, and the account
-- may be empty or the customer's account id, so two merchants' INV-1001 were one invoice.
-- The key is now partner, account, merchant name, number, amount in minor units and
-- currency, joined by U+001F (inboxpay.sidecar.review.invoice_key). Rewrite the old keys
-- (partner U+001F account U+001F number) from what each payment recorded; the new keys
-- only refine the old ones, so the one-active-payment index still holds.
UPDATE payments SET invoice_key =
    substr(invoice_key, 1,
        length(invoice_key) - length(json_extract(details, '$.invoice_number')) - 1)
    || char(31) || json_extract(details, '$.merchant')
    || char(31) || json_extract(details, '$.invoice_number')
    || char(31) || CAST(amount_minor AS TEXT)
    || char(31) || currency
WHERE json_extract(details, '$.merchant') IS NOT NULL
    AND json_extract(details, '$.invoice_number') IS NOT NULL
    AND length(invoice_key) - length(replace(invoice_key, char(31), '')) = 2
    AND substr(invoice_key, length(invoice_key) - length(json_extract(details, '$.invoice_number')))
        = char(31) || json_extract(details, '$.invoice_number');
