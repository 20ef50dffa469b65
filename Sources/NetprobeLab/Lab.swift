// Placeholder until the lab lands (issue 4): the module must not be empty for the build.
