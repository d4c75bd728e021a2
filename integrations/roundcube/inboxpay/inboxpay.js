/**
 * InboxPay for Roundcube: opens the sidecar's pane in a Roundcube dialog and speaks the
 * postMessage contract of docs/embedding.md with it.
 *
 * The bar lives in the message view, which Elastic shows in a frame; the dialog opens in
 * the top Roundcube window (where show_popup_dialog puts it), so the conversation with
 * the pane runs there too: the pane accepts messages only from its parent window.
 *
 * @license GPL-3.0-or-later (as Roundcube's plugins)
 */
(function () {
  'use strict';

  if (!window.rcmail) return;

  // A fresh token for the logged-in user, from this Roundcube's server (never stored).
  function fetch_token() {
    return new Promise(function (resolve, reject) {
      var done = false;
      rcmail.inboxpay_token_waiters = rcmail.inboxpay_token_waiters || [];
      rcmail.inboxpay_token_waiters.push(function (token) { done = true; resolve(token); });
      rcmail.http_post('plugin.inboxpay-token', {});
      setTimeout(function () { if (!done) reject(new Error('no token')); }, 15000);
    });
  }

  rcmail.addEventListener('plugin.inboxpay_token', function (data) {
    var waiters = rcmail.inboxpay_token_waiters || [];
    rcmail.inboxpay_token_waiters = [];
    waiters.forEach(function (w) { w(data.token); });
  });

  /**
   * Open the pane on a card (the InboxPay-Card header value) in this window. When the
   * pane reached a result, the message view (``source``, a window) is reloaded on close,
   * so its bar says what is true now ("already paid").
   */
  rcmail.inboxpay_open = function (card, source) {
    var pane_url = rcmail.env.inboxpay_pane_url,
      pane_origin = new URL(pane_url, window.location.href).origin,
      frame = $('<iframe>').attr({
        id: 'inboxpay-pane',
        title: rcmail.get_label('paytitle', 'inboxpay'),
        'class': 'inboxpay-pane'
      }),
      result = null,
      dialog;

    function listener(event) {
      if (event.origin !== pane_origin || !frame[0].contentWindow || event.source !== frame[0].contentWindow) return;
      var pane = frame[0].contentWindow, data = event.data || {};

      switch (data.type) {
        case 'inboxpay:ready':
          fetch_token().then(function (token) {
            pane.postMessage({ type: 'inboxpay:open', card: card, token: token }, pane_origin);
          });
          break;
        case 'inboxpay:token-needed':
          fetch_token().then(function (token) {
            pane.postMessage({ type: 'inboxpay:token', token: token }, pane_origin);
          });
          break;
        case 'inboxpay:result':
          result = data;
          rcmail.triggerEvent('inboxpay-result', data);
          break;
        case 'inboxpay:close':
          if (dialog) dialog.dialog('close');
          break;
      }
    }

    window.addEventListener('message', listener);

    dialog = rcmail.show_popup_dialog(frame[0], rcmail.get_label('paytitle', 'inboxpay'), [], {
      width: 420,
      height: Math.min(780, $(window).height() - 40),
      dialogClass: 'inboxpay-dialog',
      close: function () {
        window.removeEventListener('message', listener);
        $(this).remove();
        if (result && source) source.location.reload();
      }
    });

    // The listener is attached first, then the pane is loaded (docs/embedding.md).
    frame.attr('src', pane_url);
    return false;
  };

  // The bar in a message view: open the pane in the top Roundcube window when the
  // message is shown in its frame, else here.
  rcmail.addEventListener('init', function () {
    $('#inboxpay-open').on('click', function (e) {
      e.preventDefault();
      var host = rcmail;
      try {
        if (rcmail.is_framed() && parent.rcmail && parent.rcmail.inboxpay_open) host = parent.rcmail;
      } catch (err) {
        host = rcmail;
      }
      host.inboxpay_open(rcmail.env.inboxpay_card, window);
    });
  });
})();
