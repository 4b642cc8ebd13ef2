using System.Data.Common;
using Covet.Data.Pooling;

namespace Covet.Data;

// Where a Covet connection must answer as the provider's own connection would (the conformance suite checks each): the
// readers Covet's commands handed out are closed on Close, as the providers close theirs, and a closed connection's
// metadata and errors come from an unopened provider connection.
public partial class CovetDbConnection
{
    /// <summary>A reader one of Covet's commands handed out on this connection: closed first when the connection closes.</summary>
    internal void Track(DbDataReader reader)
    {
        // Readers live on the slot (see PooledConnection.Readers): closed before the physical connection goes back, as the
        // providers close theirs on Close.
        if (_slot is not { } slot || Volatile.Read(ref slot.Lease) != _lease)
            return;
        switch (slot.Readers)
        {
            case null:
                slot.Readers = reader;
                return;
            case DbDataReader single:
                if (ReferenceEquals(single, reader) || single.IsClosed)
                    slot.Readers = reader;
                else
                    slot.Readers = new List<DbDataReader> { single, reader };
                return;
            case List<DbDataReader> many:
                many.RemoveAll(static r => r.IsClosed);
                if (!many.Contains(reader))
                    many.Add(reader);
                return;
        }
    }

    /// <summary>Closes every reader still open, as the providers do on Close. A reader that fails to close leaves the physical connection unfit: it is destroyed on return.</summary>
    private void CloseReaders(PooledConnection slot)
    {
        var readers = slot.Readers;
        if (readers is null)
            return;
        slot.Readers = null;
        var close = slot.Pool.Dialect.ClosesReadersWithClose;
        if (readers is DbDataReader reader)
        {
            CloseReader(slot, reader, close);
            return;
        }
        foreach (var r in (List<DbDataReader>)readers)
            CloseReader(slot, r, close);
    }

    private static void CloseReader(PooledConnection slot, DbDataReader reader, bool close)
    {
        try
        {
            if (reader.IsClosed)
                return;
            if (close)
                reader.Close();
            else
                reader.Dispose();
        }
        catch (Exception)
        {
            // Close never throws for its readers (the providers' do not either); the session's state is unknown now.
            slot.Broken = true;
        }
    }

    /// <summary>
    /// What the provider's own connection answers while closed (metadata, errors): asked of a fresh, unopened provider
    /// connection with the same connection string (never the pool's shared template, which a call could change).
    /// </summary>
    private T WithClosedProviderConnection<T>(Func<DbConnection, T> ask)
    {
        using var connection = InnerFactory.CreateConnection() ?? throw new NotSupportedException("The provider cannot create connections.");
        if (_pool is { } pool)
            connection.ConnectionString = pool.ProviderConnectionString;
        else if (_connectionString.Length > 0)
            connection.ConnectionString = CovetConnectionStringKeywords.Split(_connectionString, _factory?.Options ?? new CovetPoolOptions()).ProviderConnectionString;
        return ask(connection);
    }
}
