"""Static files storage: WhiteNoise's compressed, content-hashed storage, usable before `collectstatic`.

After `collectstatic` (`make run` runs it) pages link `admin/css/base.<hash>.css`, which WhiteNoise serves
gzip-compressed with a one-year cache. Without a manifest (a test run, a server started without
`collectstatic`) the plain names are linked instead, and WhiteNoise serves them from the apps' static
directories (settings.WHITENOISE_USE_FINDERS), so the admin is styled on any first start.
"""

from whitenoise.storage import CompressedManifestStaticFilesStorage


class StaticStorage(CompressedManifestStaticFilesStorage):
    def stored_name(self, name: str) -> str:
        if not self.hashed_files:  # no staticfiles.json yet: nothing was collected
            return name
        return super().stored_name(name)
