/* auth.c - the authentication hook: today every request is anonymous (see auth.h). */
#include "auth.h"

#include "error.h"
#include "http.h"

void auth_resolve(struct http_exchange *x, auth_done_fn done)
{
	struct auth_principal *p = http_exchange_principal(x);

	p->account_id = NULL;
	p->role = CRENEAU__V1__ROLE__ROLE_NONE;
	p->session_id = NULL;
	done(x, 0);
}

int auth_check(enum auth_need need, const struct auth_principal *p)
{
	Creneau__V1__Role wanted;

	if (need == AUTH_ANYONE)
		return 0;
	if (!p->account_id || p->role == CRENEAU__V1__ROLE__ROLE_NONE)
		return ERR_UNAUTHENTICATED;
	switch (need) {
	case AUTH_CLIENT:
		wanted = CRENEAU__V1__ROLE__ROLE_CLIENT;
		break;
	case AUTH_PRACTITIONER:
		wanted = CRENEAU__V1__ROLE__ROLE_PRACTITIONER;
		break;
	case AUTH_ADMIN:
		wanted = CRENEAU__V1__ROLE__ROLE_ADMIN;
		break;
	default:
		return 0;
	}
	return p->role == wanted ? 0 : ERR_FORBIDDEN;
}
