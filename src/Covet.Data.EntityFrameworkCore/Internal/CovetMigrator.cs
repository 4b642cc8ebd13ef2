using System.Transactions;
using Microsoft.EntityFrameworkCore.Migrations;
using Microsoft.EntityFrameworkCore.Storage;

namespace Covet.Data.EntityFrameworkCore.Internal;

/// <summary>
/// The provider's migrator, run with the context's connection open for the whole migration.
/// </summary>
/// <remarks>
/// <para>Why: after applying migrations that add PostgreSQL enums, extensions or ranges, Npgsql's
/// <c>NpgsqlMigrator</c> takes <c>IRelationalConnection.DbConnection</c> while it is closed, then opens the
/// <c>IRelationalConnection</c> and calls <c>ReloadTypes()</c> on the object it took. Opening swaps Covet's physical
/// connection in, so that object would be EF's own, still closed, connection and the call would throw. With the
/// connection already open, the object it takes is the physical connection itself. EF's <c>Migrator</c> opens the
/// connection for the whole migration anyway; this only starts a little earlier, after creating the database the way
/// <c>Migrator</c> does (so the open cannot fail on a database that does not exist yet).</para>
/// <para>After a migration the pool is cleared: a migration can create types the physical connections' type caches
/// do not know (Npgsql loads them once per connection).</para>
/// </remarks>
internal sealed class CovetMigrator(IMigrator inner, IRelationalConnection connection, IRelationalDatabaseCreator creator, CovetContextConnection covet) : IMigrator
{
    public void Migrate(string? targetMigration = null)
    {
        if (!covet.IsPooledContext)
        {
            inner.Migrate(targetMigration);
            return;
        }
        using (new TransactionScope(TransactionScopeOption.Suppress, TransactionScopeAsyncFlowOption.Enabled))
        {
            if (!creator.Exists())
                creator.Create();
            connection.Open();
            try
            {
                inner.Migrate(targetMigration);
            }
            finally
            {
                connection.Close();
            }
        }
        covet.RefreshAfterSchemaChangeAsync(async: false, CancellationToken.None).GetAwaiter().GetResult();
    }

    public async Task MigrateAsync(string? targetMigration = null, CancellationToken cancellationToken = default)
    {
        if (!covet.IsPooledContext)
        {
            await inner.MigrateAsync(targetMigration, cancellationToken).ConfigureAwait(false);
            return;
        }
        using (new TransactionScope(TransactionScopeOption.Suppress, TransactionScopeAsyncFlowOption.Enabled))
        {
            if (!await creator.ExistsAsync(cancellationToken).ConfigureAwait(false))
                await creator.CreateAsync(cancellationToken).ConfigureAwait(false);
            await connection.OpenAsync(cancellationToken).ConfigureAwait(false);
            try
            {
                await inner.MigrateAsync(targetMigration, cancellationToken).ConfigureAwait(false);
            }
            finally
            {
                await connection.CloseAsync().ConfigureAwait(false);
            }
        }
        await covet.RefreshAfterSchemaChangeAsync(async: true, cancellationToken).ConfigureAwait(false);
    }

    public string GenerateScript(string? fromMigration = null, string? toMigration = null, MigrationsSqlGenerationOptions options = MigrationsSqlGenerationOptions.Default) =>
        inner.GenerateScript(fromMigration, toMigration, options);

    public bool HasPendingModelChanges() => inner.HasPendingModelChanges();
}
