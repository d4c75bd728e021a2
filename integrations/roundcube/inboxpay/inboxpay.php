<?php

/**
 * InboxPay for Roundcube: "Review and pay" for invoices that carry a signed
 * InboxPay-Card header, and a quiet note on messages whose payment request
 * InboxPay removed.
 *
 * - When a message is shown, its InboxPay-Card and InboxPay-Verdict headers (fetched
 *   with the message headers, see storage_init) decide what appears above it.
 * - A card is verified server-to-server: POST {sidecar}/v1/cards/verify with a token
 *   minted here for the logged-in user. Only a payable card shows the bar.
 * - The bar opens the sidecar's pane in a Roundcube dialog; the browser gets a
 *   short-lived token for its own user from plugin.inboxpay-token and hands it to the
 *   pane with postMessage (docs/embedding.md).
 *
 * Tokens are EdDSA (Ed25519) JWTs signed with PHP's sodium extension; the private key
 * never leaves this server. See docs/roundcube.md.
 *
 * @license GPL-3.0-or-later (as Roundcube's plugins)
 */
class inboxpay extends rcube_plugin
{
    public $task = 'mail';

    /** The headers Roundcube must fetch with every message (IMAP names, upper case). */
    private const HEADERS = ['INBOXPAY-CARD', 'INBOXPAY-VERDICT'];

    /** The removal reasons that have their own sentence; the others say their token. */
    private const REASONS = [
        'dkim_fail', 'spf_fail', 'unaligned', 'spf_unaligned', 'not_partner',
        'invalid_invoice', 'url_not_allowed', 'org_disabled', 'recipient_not_addressed',
        'request_expired', 'internal_error',
    ];

    /** @var rcmail */
    private $rc;

    public function init()
    {
        $this->rc = rcmail::get_instance();
        $this->load_config();

        $this->add_hook('storage_init', [$this, 'storage_init']);
        $this->add_hook('message_objects', [$this, 'message_objects']);
        $this->register_action('plugin.inboxpay-token', [$this, 'token_action']);

        // The list (which hosts the dialog) and the message views (which show the bar).
        if ($this->rc->output->type == 'html'
            && in_array($this->rc->action, ['', 'index', 'show', 'preview'], true)
        ) {
            $this->add_texts('localization/', ['reviewandpay', 'paytitle', 'paid', 'pending']);
            $this->include_stylesheet('inboxpay.css');
            $this->include_script('inboxpay.js');
            $this->rc->output->set_env('inboxpay_pane_url', $this->public_url() . '/pane/');
        }
    }

    /**
     * Ask Roundcube to fetch our headers with the message headers.
     */
    public function storage_init($args)
    {
        $have = isset($args['fetch_headers']) ? (string) $args['fetch_headers'] : '';
        $args['fetch_headers'] = trim($have . ' ' . implode(' ', self::HEADERS));

        return $args;
    }

    /**
     * Above the message: the pay bar, a note, or nothing.
     */
    public function message_objects($args)
    {
        $message = $args['message'] ?? null;
        if (empty($message) || empty($message->headers)) {
            return $args;
        }

        $cards = self::header_values($message->headers, 'inboxpay-card');
        $verdicts = self::header_values($message->headers, 'inboxpay-verdict');

        if (count($cards) == 1) {
            $html = $this->card_object($cards[0]);
        }
        else {
            // None, or several (never the milter's doing): nothing payable.
            $html = count($verdicts) == 1 ? $this->verdict_object($verdicts[0]) : null;
        }

        if ($html !== null) {
            $args['content'][] = $html;
        }

        return $args;
    }

    /**
     * plugin.inboxpay-token: a fresh token for the logged-in user, for the pane.
     * A POST from Roundcube's own page (the request token is checked by Roundcube).
     */
    public function token_action()
    {
        if ($_SERVER['REQUEST_METHOD'] !== 'POST') {
            http_response_code(405);
            exit;
        }

        $token = $this->mint_token();
        if ($token === null) {
            $this->rc->output->show_message('servererror', 'error');
        }
        else {
            $this->rc->output->command('plugin.inboxpay_token', ['token' => $token]);
        }

        $this->rc->output->send();
    }

    // --- what is shown ---

    private function card_object($card)
    {
        $card = preg_replace('/\s+/', '', $card);
        $token = $this->mint_token();
        if ($token === null) {
            return null;
        }

        list($status, $body) = $this->sidecar_post('/v1/cards/verify', ['card' => $card], $token);

        if ($status == 200 && is_array($body)) {
            switch ($body['status'] ?? null) {
            case 'payable':
                return $this->pay_bar($card, $body);
            case 'paid':
                return $this->note('alreadypaid', 'paid');
            case 'processing':
                return $this->note('processing', 'processing');
            case 'expired':
                return $this->note('expired', 'expired');
            case 'org_disabled':
                return $this->note('orgdisabled', 'org-disabled');
            }
            return null;
        }

        $code = is_array($body) ? ($body['error']['code'] ?? '') : '';
        if ($code == 'card_expired' || $code == 'retired_key') {
            return $this->note('expired', 'expired');
        }
        if ($status === null || $status >= 500) {
            rcube::raise_error([
                'code' => 500, 'file' => __FILE__, 'line' => __LINE__,
                'message' => "InboxPay: the sidecar did not verify a card (HTTP "
                    . ($status === null ? 'none' : $status) . ")",
            ], true, false);
        }

        // not_a_recipient, a bad signature, an unknown key: nothing payable, nothing to say.
        return null;
    }

    private function pay_bar($card, array $review)
    {
        $summary = $this->gettext([
            'name' => 'invoicesummary',
            'vars' => [
                'number' => (string) ($review['invoice_number'] ?? ''),
                'merchant' => (string) ($review['merchant'] ?? ''),
                'amount' => $this->money((string) ($review['amount'] ?? ''), (string) ($review['currency'] ?? '')),
                'due' => (string) ($review['due_date'] ?? ''),
            ],
        ]);

        // The card goes to the page only to hand it to the pane, as the header it is.
        $this->rc->output->set_env('inboxpay_card', $card);

        $button = html::a(
            ['href' => '#inboxpay', 'id' => 'inboxpay-open', 'role' => 'button', 'class' => 'inboxpay-open'],
            rcube::Q($this->gettext('reviewandpay'))
        );

        return html::div(
            ['id' => 'inboxpay-bar', 'class' => 'information inboxpay-bar'],
            html::span('inboxpay-summary', rcube::Q($summary)) . '&nbsp;' . html::span('boxbuttons', $button)
        );
    }

    private function note($label, $kind)
    {
        return html::div(
            ['class' => 'information inboxpay-note inboxpay-' . $kind],
            html::span(null, rcube::Q($this->gettext($label)))
        );
    }

    private function verdict_object($verdict)
    {
        if (!preg_match('/^\s*removed\s*;\s*reason\s*=\s*"?([a-z0-9_]+)/i', $verdict, $m)) {
            return null;  // "card" without a card, or "skipped": nothing to tell
        }

        $reason = strtolower($m[1]);
        $why = in_array($reason, self::REASONS, true)
            ? $this->gettext('reason_' . $reason)
            : $this->gettext(['name' => 'reason_other', 'vars' => ['reason' => $reason]]);

        return html::div(
            ['class' => 'information inboxpay-note inboxpay-removed', 'data-reason' => $reason],
            html::span(null, rcube::Q($this->gettext(['name' => 'removed', 'vars' => ['why' => $why]])))
        );
    }

    private function money($amount, $currency)
    {
        if (class_exists('NumberFormatter') && $amount !== '' && $currency !== '') {
            $locale = !empty($_SESSION['language']) ? $_SESSION['language'] : 'en_US';
            $formatter = new NumberFormatter($locale, NumberFormatter::CURRENCY);
            $text = $formatter->formatCurrency((float) $amount, $currency);
            if ($text !== false) {
                return $text;
            }
        }

        return trim($currency . ' ' . $amount);
    }

    // --- the sidecar, server-to-server ---

    private function sidecar_url()
    {
        return rtrim((string) $this->rc->config->get('inboxpay_sidecar_url', 'http://127.0.0.1:8080'), '/');
    }

    private function public_url()
    {
        $url = $this->rc->config->get('inboxpay_public_url');

        return $url ? rtrim((string) $url, '/') : $this->sidecar_url();
    }

    /**
     * @return array{0: int|null, 1: mixed} The HTTP status (null: no answer) and the JSON body.
     */
    private function sidecar_post($path, array $body, $token)
    {
        try {
            $client = $this->rc->get_http_client([
                'timeout' => (float) $this->rc->config->get('inboxpay_timeout', 5),
                'http_errors' => false,
                'allow_redirects' => false,
            ]);
            $response = $client->request('POST', $this->sidecar_url() . $path, [
                'headers' => ['Authorization' => 'Bearer ' . $token, 'Accept' => 'application/json'],
                'json' => $body,
            ]);
        }
        catch (Exception $e) {
            rcube::raise_error([
                'code' => 500, 'file' => __FILE__, 'line' => __LINE__,
                'message' => 'InboxPay: the sidecar cannot be reached: ' . $e->getMessage(),
            ], true, false);

            return [null, null];
        }

        return [$response->getStatusCode(), json_decode((string) $response->getBody(), true)];
    }

    // --- user tokens ---

    /**
     * The logged-in user's address: the IMAP login (with Roundcube's mail domain when it
     * has none), never an identity's address, which the user may edit.
     */
    private function user_address()
    {
        if (empty($this->rc->user) || empty($this->rc->user->ID)) {
            return null;
        }

        $address = strtolower((string) $this->rc->user->get_username('mail'));

        return strpos($address, '@') ? $address : null;
    }

    /**
     * A compact JWS (EdDSA) for the logged-in user: iss, aud, sub, iat, exp.
     */
    private function mint_token()
    {
        $sub = $this->user_address();
        $secret = $sub === null ? null : $this->secret_key();
        if ($secret === null) {
            if ($sub === null) {
                rcube::raise_error([
                    'code' => 500, 'file' => __FILE__, 'line' => __LINE__,
                    'message' => 'InboxPay: the logged-in user has no email address to put in a token',
                ], true, false);
            }
            return null;
        }

        $now = time();
        $lifetime = max(30, min(900, (int) $this->rc->config->get('inboxpay_token_lifetime', 300)));
        $header = ['alg' => 'EdDSA', 'typ' => 'JWT'];
        $claims = [
            'iss' => (string) $this->rc->config->get('inboxpay_issuer', 'roundcube'),
            'aud' => (string) $this->rc->config->get('inboxpay_audience', 'inboxpay'),
            'sub' => $sub,
            'iat' => $now,
            'exp' => $now + $lifetime,
        ];
        $input = self::b64url(json_encode($header)) . '.'
            . self::b64url(json_encode($claims, JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE));
        $signature = sodium_crypto_sign_detached($input, $secret);
        sodium_memzero($secret);

        return $input . '.' . self::b64url($signature);
    }

    /**
     * The sodium secret key (seed + public key) from the Ed25519 PKCS#8 PEM file.
     */
    private function secret_key()
    {
        $path = (string) $this->rc->config->get('inboxpay_key_file', '');
        $pem = $path !== '' && is_readable($path) ? file_get_contents($path) : false;
        $seed = $pem === false ? null : self::ed25519_seed($pem);

        if ($seed === null) {
            rcube::raise_error([
                'code' => 500, 'file' => __FILE__, 'line' => __LINE__,
                'message' => "InboxPay: inboxpay_key_file ($path) is missing, unreadable, or not "
                    . 'an Ed25519 private key in PKCS#8 PEM (openssl genpkey -algorithm ed25519)',
            ], true, false);

            return null;
        }

        $pair = sodium_crypto_sign_seed_keypair($seed);
        sodium_memzero($seed);
        $secret = sodium_crypto_sign_secretkey($pair);
        sodium_memzero($pair);

        return $secret;
    }

    /**
     * The 32-byte seed of an Ed25519 private key in PKCS#8 PEM (RFC 8410), or null.
     */
    public static function ed25519_seed($pem)
    {
        if (!preg_match('/-----BEGIN PRIVATE KEY-----(.+?)-----END PRIVATE KEY-----/s', $pem, $m)) {
            return null;
        }

        $der = base64_decode(preg_replace('/\s+/', '', $m[1]), true);
        // SEQUENCE { INTEGER 0, SEQUENCE { OID 1.3.101.112 }, OCTET STRING { OCTET STRING (32) } }
        $prefix = hex2bin('302e020100300506032b657004220420');
        if ($der === false || strlen($der) != 48 || strncmp($der, $prefix, 16) !== 0) {
            return null;
        }

        return substr($der, 16);
    }

    private static function b64url($bytes)
    {
        return rtrim(strtr(base64_encode($bytes), '+/', '-_'), '=');
    }

    /**
     * A header's values, whether Roundcube stored one (a string) or several (an array).
     */
    private static function header_values($headers, $name)
    {
        $values = $headers->others[$name] ?? [];

        return array_values(array_filter(array_map('strval', (array) $values), 'strlen'));
    }
}
