"""Re-encrypt every encrypted column under the newest key of FIELD_ENCRYPTION_KEYS."""

from django.core.management.base import BaseCommand
from django.db import connection, transaction

from salesos.encryption import decrypt, encrypt, encrypted_fields, generate_key_spec, key_ring
from tenants.context import platform_access

BATCH = 500


class Command(BaseCommand):
    help = "Re-encrypt secrets stored under older keys with the newest key (run after adding one)."

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="count, change nothing")
        parser.add_argument(
            "--generate-key",
            metavar="KEY_ID",
            help="print a new key-id:base64 key to put first in FIELD_ENCRYPTION_KEYS, then stop",
        )

    def handle(self, *args, dry_run=False, generate_key=None, **options):
        if generate_key:
            self.stdout.write(generate_key_spec(generate_key))
            return
        ring = key_ring()
        current = f"gcm1:{ring.current_id}:"
        total = 0
        with platform_access():
            for model, field in encrypted_fields():
                table = connection.ops.quote_name(model._meta.db_table)
                column = connection.ops.quote_name(field.column)
                pk = connection.ops.quote_name(model._meta.pk.column)
                last_pk, rewritten = None, 0
                while True:
                    # Raw SQL on purpose: the stored ciphertext (and its key id) is what we need.
                    where = f"{column} IS NOT NULL AND {column} <> '' AND {column} NOT LIKE %s"
                    params = [current + "%"]
                    if last_pk is not None:
                        where += f" AND {pk} > %s"
                        params.append(last_pk)
                    with connection.cursor() as cursor:
                        cursor.execute(
                            f"SELECT {pk}, {column} FROM {table} WHERE {where} "  # noqa: S608
                            f"ORDER BY {pk} LIMIT {BATCH}",
                            params,
                        )
                        rows = cursor.fetchall()
                    if not rows:
                        break
                    last_pk = rows[-1][0]
                    if dry_run:
                        rewritten += len(rows)
                        continue
                    context = field.encryption_context
                    with transaction.atomic(), connection.cursor() as cursor:
                        for row_pk, stored in rows:
                            fresh = encrypt(decrypt(stored, context=context), context=context)
                            cursor.execute(
                                f"UPDATE {table} SET {column} = %s WHERE {pk} = %s",  # noqa: S608
                                [fresh, row_pk],
                            )
                    rewritten += len(rows)
                total += rewritten
                self.stdout.write(f"{model._meta.label}.{field.name}: {rewritten} re-encrypted")
        verb = "would be re-encrypted" if dry_run else "re-encrypted"
        self.stdout.write(self.style.SUCCESS(f"{total} values {verb} under key {ring.current_id}"))
