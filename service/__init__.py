"""The order service's project folder. A package only so that its tests are
``service.tests``, apart from the library's ``tests``."""
