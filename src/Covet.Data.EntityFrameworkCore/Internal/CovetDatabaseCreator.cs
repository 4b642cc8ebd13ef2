using Microsoft.EntityFrameworkCore.Storage;

namespace Covet.Data.EntityFrameworkCore.Internal;

/// <summary>
/// The provider's database creator, plus: deleting the database clears this context's Covet pool, before (so idle
/// sessions do not hold the database) and after (so no idle connection to the dropped database, or to SQLite's deleted
/// file, is ever handed out; Npgsql and MySQL clear their own pools there too); creating the schema refreshes the
/// provider's type cache and clears the pool (Npgsql creates enums, extensions and ranges there, which connections opened
/// before do not know).
/// </summary>
/// <remarks>Registered as <c>IDatabaseCreator</c> only (what <c>DatabaseFacade</c> and the migrators resolve); the
/// provider's services that depend on <c>IRelationalDatabaseCreator</c> keep getting the provider's own.</remarks>
internal sealed class CovetDatabaseCreator(IRelationalDatabaseCreator inner, CovetContextConnection connection) : IRelationalDatabaseCreator
{
    public bool EnsureDeleted()
    {
        connection.ClearPool();
        try
        {
            return inner.EnsureDeleted();
        }
        finally
        {
            connection.ClearPool();
        }
    }

    public async Task<bool> EnsureDeletedAsync(CancellationToken cancellationToken = default)
    {
        connection.ClearPool();
        try
        {
            return await inner.EnsureDeletedAsync(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            connection.ClearPool();
        }
    }

    public void Delete()
    {
        connection.ClearPool();
        try
        {
            inner.Delete();
        }
        finally
        {
            connection.ClearPool();
        }
    }

    public async Task DeleteAsync(CancellationToken cancellationToken = default)
    {
        connection.ClearPool();
        try
        {
            await inner.DeleteAsync(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            connection.ClearPool();
        }
    }

    public bool EnsureCreated()
    {
        var created = inner.EnsureCreated();
        if (created)
            connection.RefreshAfterSchemaChangeAsync(async: false, CancellationToken.None).GetAwaiter().GetResult();
        return created;
    }

    public async Task<bool> EnsureCreatedAsync(CancellationToken cancellationToken = default)
    {
        var created = await inner.EnsureCreatedAsync(cancellationToken).ConfigureAwait(false);
        if (created)
            await connection.RefreshAfterSchemaChangeAsync(async: true, cancellationToken).ConfigureAwait(false);
        return created;
    }

    public bool CanConnect() => inner.CanConnect();

    public Task<bool> CanConnectAsync(CancellationToken cancellationToken = default) => inner.CanConnectAsync(cancellationToken);

    public bool Exists() => inner.Exists();

    public Task<bool> ExistsAsync(CancellationToken cancellationToken = default) => inner.ExistsAsync(cancellationToken);

    public bool HasTables() => inner.HasTables();

    public Task<bool> HasTablesAsync(CancellationToken cancellationToken = default) => inner.HasTablesAsync(cancellationToken);

    public void Create() => inner.Create();

    public Task CreateAsync(CancellationToken cancellationToken = default) => inner.CreateAsync(cancellationToken);

    public void CreateTables() => inner.CreateTables();

    public Task CreateTablesAsync(CancellationToken cancellationToken = default) => inner.CreateTablesAsync(cancellationToken);

    public string GenerateCreateScript() => inner.GenerateCreateScript();
}
