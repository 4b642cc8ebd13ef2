using System.Collections;
using System.Collections.ObjectModel;
using System.Data;
using System.Data.Common;
using System.Diagnostics.CodeAnalysis;

namespace Covet.Data;

/// <summary>
/// The provider's reader, wrapped only when <see cref="CommandBehavior.CloseConnection"/> was asked for: closing it closes
/// the <see cref="CovetDbConnection"/> (returning the physical connection to the pool, never closing it).
/// Every other command returns the provider's own reader unwrapped.
/// </summary>
public sealed class CovetDbDataReader : DbDataReader, IDbColumnSchemaGenerator
{
    private readonly CovetDbConnection _connection;
    private bool _closed;

    internal CovetDbDataReader(DbDataReader inner, CovetDbConnection connection)
    {
        Inner = inner;
        _connection = connection;
    }

    /// <summary>The provider's own reader.</summary>
    public DbDataReader Inner { get; }

    /// <inheritdoc />
    public override void Close()
    {
        if (_closed)
            return;
        _closed = true;
        try
        {
            Inner.Close();
        }
        finally
        {
            _connection.Close();
        }
    }

    /// <inheritdoc />
    public override async Task CloseAsync()
    {
        if (_closed)
            return;
        _closed = true;
        try
        {
            await Inner.CloseAsync().ConfigureAwait(false);
        }
        finally
        {
            _connection.Close();
        }
    }

    /// <inheritdoc />
    protected override void Dispose(bool disposing)
    {
        // The provider's reader is disposed before the connection goes back to the pool: Npgsql reuses one reader object
        // per physical connection, so a Dispose after the return would hit the next borrower's reader.
        if (disposing && !_closed)
        {
            _closed = true;
            try
            {
                Inner.Dispose();
            }
            finally
            {
                _connection.Close();
            }
        }
        base.Dispose(disposing);
    }

    /// <inheritdoc />
    public override async ValueTask DisposeAsync()
    {
        if (!_closed)
        {
            _closed = true;
            try
            {
                await Inner.DisposeAsync().ConfigureAwait(false);
            }
            finally
            {
                _connection.Close();
            }
        }
        GC.SuppressFinalize(this);
    }

    /// <inheritdoc />
    public override bool Read() => Observe(Inner.Read);
    /// <inheritdoc />
    public override async Task<bool> ReadAsync(CancellationToken cancellationToken)
    {
        try { return await Inner.ReadAsync(cancellationToken).ConfigureAwait(false); }
        catch (Exception e) when (CovetDbCommand.Observe(_connection, e)) { throw; }
    }
    /// <inheritdoc />
    public override bool NextResult() => Observe(Inner.NextResult);
    /// <inheritdoc />
    public override async Task<bool> NextResultAsync(CancellationToken cancellationToken)
    {
        try { return await Inner.NextResultAsync(cancellationToken).ConfigureAwait(false); }
        catch (Exception e) when (CovetDbCommand.Observe(_connection, e)) { throw; }
    }

    private T Observe<T>(Func<T> action)
    {
        try { return action(); }
        catch (Exception e) when (CovetDbCommand.Observe(_connection, e)) { throw; }
    }

    /// <inheritdoc />
    public override object this[int ordinal] => Inner[ordinal];
    /// <inheritdoc />
    public override object this[string name] => Inner[name];
    /// <inheritdoc />
    public override int Depth => Inner.Depth;
    /// <inheritdoc />
    public override int FieldCount => Inner.FieldCount;
    /// <inheritdoc />
    public override int VisibleFieldCount => Inner.VisibleFieldCount;
    /// <inheritdoc />
    public override bool HasRows => Inner.HasRows;
    /// <inheritdoc />
    public override bool IsClosed => _closed || Inner.IsClosed;
    /// <inheritdoc />
    public override int RecordsAffected => Inner.RecordsAffected;
    /// <inheritdoc />
    public override bool GetBoolean(int ordinal) => Inner.GetBoolean(ordinal);
    /// <inheritdoc />
    public override byte GetByte(int ordinal) => Inner.GetByte(ordinal);
    /// <inheritdoc />
    public override long GetBytes(int ordinal, long dataOffset, byte[]? buffer, int bufferOffset, int length) => Inner.GetBytes(ordinal, dataOffset, buffer, bufferOffset, length);
    /// <inheritdoc />
    public override char GetChar(int ordinal) => Inner.GetChar(ordinal);
    /// <inheritdoc />
    public override long GetChars(int ordinal, long dataOffset, char[]? buffer, int bufferOffset, int length) => Inner.GetChars(ordinal, dataOffset, buffer, bufferOffset, length);
    /// <inheritdoc />
    public override string GetDataTypeName(int ordinal) => Inner.GetDataTypeName(ordinal);
    /// <inheritdoc />
    public override DateTime GetDateTime(int ordinal) => Inner.GetDateTime(ordinal);
    /// <inheritdoc />
    public override decimal GetDecimal(int ordinal) => Inner.GetDecimal(ordinal);
    /// <inheritdoc />
    public override double GetDouble(int ordinal) => Inner.GetDouble(ordinal);
    /// <inheritdoc />
    [return: DynamicallyAccessedMembers(DynamicallyAccessedMemberTypes.PublicFields | DynamicallyAccessedMemberTypes.PublicProperties)]
    public override Type GetFieldType(int ordinal) => Inner.GetFieldType(ordinal);
    /// <inheritdoc />
    public override float GetFloat(int ordinal) => Inner.GetFloat(ordinal);
    /// <inheritdoc />
    public override Guid GetGuid(int ordinal) => Inner.GetGuid(ordinal);
    /// <inheritdoc />
    public override short GetInt16(int ordinal) => Inner.GetInt16(ordinal);
    /// <inheritdoc />
    public override int GetInt32(int ordinal) => Inner.GetInt32(ordinal);
    /// <inheritdoc />
    public override long GetInt64(int ordinal) => Inner.GetInt64(ordinal);
    /// <inheritdoc />
    public override string GetName(int ordinal) => Inner.GetName(ordinal);
    /// <inheritdoc />
    public override int GetOrdinal(string name) => Inner.GetOrdinal(name);
    /// <inheritdoc />
    public override string GetString(int ordinal) => Inner.GetString(ordinal);
    /// <inheritdoc />
    public override object GetValue(int ordinal) => Inner.GetValue(ordinal);
    /// <inheritdoc />
    public override int GetValues(object[] values) => Inner.GetValues(values);
    /// <inheritdoc />
    public override bool IsDBNull(int ordinal) => Inner.IsDBNull(ordinal);
    /// <inheritdoc />
    public override Task<bool> IsDBNullAsync(int ordinal, CancellationToken cancellationToken) => Inner.IsDBNullAsync(ordinal, cancellationToken);
    /// <inheritdoc />
    public override T GetFieldValue<T>(int ordinal) => Inner.GetFieldValue<T>(ordinal);
    /// <inheritdoc />
    public override Task<T> GetFieldValueAsync<T>(int ordinal, CancellationToken cancellationToken) => Inner.GetFieldValueAsync<T>(ordinal, cancellationToken);
    /// <inheritdoc />
    public override Stream GetStream(int ordinal) => Inner.GetStream(ordinal);
    /// <inheritdoc />
    public override TextReader GetTextReader(int ordinal) => Inner.GetTextReader(ordinal);
    /// <inheritdoc />
    [return: DynamicallyAccessedMembers(DynamicallyAccessedMemberTypes.PublicFields | DynamicallyAccessedMemberTypes.PublicProperties)]
    public override Type GetProviderSpecificFieldType(int ordinal) => Inner.GetProviderSpecificFieldType(ordinal);
    /// <inheritdoc />
    public override object GetProviderSpecificValue(int ordinal) => Inner.GetProviderSpecificValue(ordinal);
    /// <inheritdoc />
    public override int GetProviderSpecificValues(object[] values) => Inner.GetProviderSpecificValues(values);
    /// <inheritdoc />
    public override DataTable? GetSchemaTable() => Inner.GetSchemaTable();
    /// <inheritdoc />
    public override Task<DataTable?> GetSchemaTableAsync(CancellationToken cancellationToken = default) => Inner.GetSchemaTableAsync(cancellationToken);
    /// <inheritdoc />
    public override Task<ReadOnlyCollection<DbColumn>> GetColumnSchemaAsync(CancellationToken cancellationToken = default) => Inner.GetColumnSchemaAsync(cancellationToken);
    /// <inheritdoc />
    public ReadOnlyCollection<DbColumn> GetColumnSchema() => Inner.GetColumnSchema();
    /// <inheritdoc />
    public override IEnumerator GetEnumerator() => new DbEnumerator(this, closeReader: false);
}
