from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "clinaiops.api"
    label = "api"
    verbose_name = "Patient mobile API"

    def ready(self) -> None:
        # Imported in ready(): these modules import models, which exist only once the app registry is loaded.
        from axes.signals import user_locked_out

        from clinaiops.api.auth_signals import tokens_revoke_on_sign_in_lockout

        user_locked_out.connect(tokens_revoke_on_sign_in_lockout, dispatch_uid="clinaiops.api.tokens_revoke_on_lockout")
