"""Definition formats, pure: ``files`` (YAML/JSON documents on disk, parsed into workflows and
rules) and ``records`` (the config topic's keys, change outcomes, the store protocol).

Nothing is re-exported here: ``records`` sits below the engines and ``files`` above them."""
