/**
 * The operator page's login form: the only HTML rendered on the server, so
 * the only place strings are put into markup here (escaped with `escapeHtml`).
 */

/** `text` safe inside HTML text and double-quoted attribute values. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`);
}

/** The login page, with an optional error message. */
export function loginPage(opts: { error?: string } = {}): string {
  const error =
    opts.error === undefined ? "" : `<p class="login-error" role="alert">${escapeHtml(opts.error)}</p>`;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sign in · Tributary operator</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/assets/style.css">
</head>
<body class="login-body">
<main class="login-card">
<h1><span class="brand-mark" aria-hidden="true"></span>Tributary <span class="muted">operator</span></h1>
<p class="muted">Sign in with the coordinator's operator token (<code>operator.token</code> in the data directory, or <code>TRIBUTARY_OPERATOR_TOKEN</code>).</p>
${error}
<form method="post" action="/login" class="login-form">
<label for="token">Operator token</label>
<input id="token" name="token" type="password" autocomplete="current-password" required autofocus spellcheck="false">
<button type="submit">Sign in</button>
</form>
</main>
</body>
</html>
`;
}
