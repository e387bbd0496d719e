-- Removing an account (DeleteAccount) rewrites the audit entries that
-- name its address and drops the invitations to it; exporting its data
-- lists those invitations. These indexes find them without reading the
-- whole tables.
CREATE INDEX audit_target ON audit ((record->>'target'));
CREATE INDEX invitation_email ON invitation ((record->>'email'));
