"""The panel: sign-up, sign-in and Account Settings, served by the API's own process."""
