"""Helpers shared by the test suites: throwaway databases, domain object builders."""
