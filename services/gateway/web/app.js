/*
 * créneau - the one script of the static pages (services/gateway/web).
 *
 * Chooses the language (?lang=fr|en, else the browser's preferred
 * languages, else French), then runs the page named by <body data-page>:
 *   verify-email    POST /v1/email-verifications/confirm {token}
 *   reset-password  POST /v1/password-resets/confirm {token, password}
 *   newsletter-confirm      POST /v1/newsletter/confirm {token}
 *   newsletter-unsubscribe  POST /v1/newsletter/unsubscribe {token}
 * The token comes from the link's query string (?token=) and goes only to
 * this origin's API; once used it is taken out of the address bar. The
 * newsletter pages act only on a click of their button: a mail scanner
 * that opens (or even renders) the link changes nothing.
 */
(function () {
	"use strict";

	var LANGS = ["fr", "en"];
	var params = new URLSearchParams(window.location.search);

	function chooseLanguage() {
		var asked = params.get("lang");
		var prefs = navigator.languages || [navigator.language || ""];
		var i, base;

		if (LANGS.indexOf(asked) >= 0)
			return asked;
		for (i = 0; i < prefs.length; i++) {
			base = String(prefs[i]).toLowerCase().split("-")[0];
			if (LANGS.indexOf(base) >= 0)
				return base;
		}
		return "fr";
	}

	var lang = chooseLanguage();

	var TEXT = {
		fr: {
			required: "Saisissez un mot de passe.",
			mismatch: "Les deux mots de passe diffèrent.",
			refused: "Mot de passe refusé : ",
			other: "Français"
		},
		en: {
			required: "Enter a password.",
			mismatch: "The two passwords differ.",
			refused: "Password refused: ",
			other: "English"
		}
	};

	function t(key) {
		return TEXT[lang][key];
	}

	/* the current address with lang set (the token, if any, kept) */
	function urlWithLang(code) {
		var p = new URLSearchParams(window.location.search);

		p.set("lang", code);
		return window.location.pathname + "?" + p.toString();
	}

	function applyLanguage() {
		var body = document.body;
		var nav = document.querySelector(".langs");
		var title = body.getAttribute("data-title-" + lang);

		document.documentElement.lang = lang;
		if (title)
			document.title = title;
		if (!nav)
			return;
		LANGS.forEach(function (code) {
			var a = document.createElement("a");

			a.href = urlWithLang(code);
			a.lang = code;
			a.hreflang = code;
			a.textContent = TEXT[code].other;
			if (code === lang)
				a.setAttribute("aria-current", "true");
			nav.appendChild(a);
		});
	}

	/* shows the one message of #status whose data-state is state */
	function show(state) {
		var all = document.querySelectorAll("#status [data-state]");
		var i;

		for (i = 0; i < all.length; i++)
			all[i].hidden = all[i].getAttribute("data-state") !== state;
	}

	/* takes the token out of the address bar (and so out of history) */
	function forgetToken() {
		var p = new URLSearchParams(window.location.search);
		var rest;

		p.delete("token");
		rest = p.toString();
		if (window.history && window.history.replaceState)
			window.history.replaceState(null, "",
			    window.location.pathname + (rest ? "?" + rest : ""));
	}

	/*
	 * POSTs body as JSON to path; calls done(status, error) with error the
	 * API's {code, message, field} (or {} when there is none), status 0
	 * when the network failed.
	 */
	function postJson(path, body, done) {
		fetch(path, {
			method: "POST",
			headers: {"Content-Type": "application/json",
				  "Accept": "application/json"},
			body: JSON.stringify(body),
			credentials: "same-origin",
			cache: "no-store"
		}).then(function (res) {
			if (res.status === 204)
				return done(204, {});
			return res.json().then(function (json) {
				done(res.status, (json && json.error) || {});
			}, function () {
				done(res.status, {});
			});
		}, function () {
			done(0, {});
		});
	}

	function isBusy(status) {
		return status === 0 || status === 429 || status === 503;
	}

	function verifyEmail() {
		var token = params.get("token");

		if (!token) {
			show("no-token");
			return;
		}
		show("working");
		postJson("/v1/email-verifications/confirm", {token: token},
		    function (status, err) {
			if (status === 204) {
				forgetToken();
				show("done");
			} else if (status === 409) {
				show("conflict");
			} else if (status === 400 || err.field === "token") {
				show("invalid");
			} else if (isBusy(status)) {
				show("busy");
			} else {
				show("failed");
			}
		});
	}

	function fieldError(input, message) {
		var out = document.getElementById(input.id + "-error");

		input.setAttribute("aria-invalid", message ? "true" : "false");
		out.textContent = message || "";
		out.hidden = !message;
	}

	function resetPassword() {
		var token = params.get("token");
		var form = document.getElementById("reset-form");
		var pw = document.getElementById("password");
		var pw2 = document.getElementById("password2");
		var button = form.querySelector("button");

		if (!token) {
			form.hidden = true;
			show("no-token");
			return;
		}
		form.addEventListener("submit", function (event) {
			event.preventDefault();
			fieldError(pw, "");
			fieldError(pw2, "");
			if (!pw.value) {
				fieldError(pw, t("required"));
				pw.focus();
				return;
			}
			if (pw.value !== pw2.value) {
				fieldError(pw2, t("mismatch"));
				pw2.focus();
				return;
			}
			button.disabled = true;
			show("working");
			postJson("/v1/password-resets/confirm",
			    {token: token, password: pw.value},
			    function (status, err) {
				button.disabled = false;
				if (status === 204) {
					form.hidden = true;
					forgetToken();
					show("done");
				} else if (err.field === "password") {
					show("fix");
					fieldError(pw, t("refused") +
					    (err.message || ""));
					pw.focus();
				} else if (err.field === "token" ||
				    err.code === "invalid_token") {
					form.hidden = true;
					show("invalid");
				} else if (isBusy(status)) {
					show("busy");
				} else {
					show("failed");
				}
			});
		});
	}

	/* a page whose one button POSTs {token} to path (204: done) */
	function tokenAction(path) {
		var token = params.get("token");
		var form = document.getElementById("action-form");
		var button = form.querySelector("button");

		show("");
		if (!token) {
			form.hidden = true;
			show("no-token");
			return;
		}
		form.addEventListener("submit", function (event) {
			event.preventDefault();
			button.disabled = true;
			show("working");
			postJson(path, {token: token}, function (status, err) {
				button.disabled = false;
				if (status === 204) {
					form.hidden = true;
					forgetToken();
					show("done");
				} else if (status === 400 || status === 404 ||
				    err.code === "invalid_token") {
					form.hidden = true;
					show("invalid");
				} else if (isBusy(status)) {
					show("busy");
				} else {
					show("failed");
				}
			});
		});
	}

	function start() {
		var page = document.body.getAttribute("data-page");

		applyLanguage();
		if (page === "verify-email")
			verifyEmail();
		else if (page === "reset-password")
			resetPassword();
		else if (page === "newsletter-confirm")
			tokenAction("/v1/newsletter/confirm");
		else if (page === "newsletter-unsubscribe")
			tokenAction("/v1/newsletter/unsubscribe");
	}

	if (document.readyState === "loading")
		document.addEventListener("DOMContentLoaded", start);
	else
		start();
}());
