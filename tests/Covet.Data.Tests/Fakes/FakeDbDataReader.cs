using System.Collections;
using System.Data;
using System.Data.Common;
using System.Globalization;

namespace Covet.Data.Tests.Fakes;

/// <summary>
/// An in-memory, forward-only <see cref="DbDataReader"/> over one result set. Honours
/// <see cref="CommandBehavior.CloseConnection"/>, <see cref="CommandBehavior.SingleRow"/> and
/// <see cref="CommandBehavior.SchemaOnly"/>. Closing its connection closes it.
/// </summary>
public sealed class FakeDbDataReader : DbDataReader
{
    private readonly IReadOnlyList<FakeColumn> _columns;
    private readonly IReadOnlyList<object[]> _rows;
    private readonly int _recordsAffected;
    private readonly CommandBehavior _behavior;
    private readonly FakeDbConnection? _connection;
    private int _position = -1;
    private bool _hasResultSet = true;
    private volatile bool _isClosed;

    /// <summary>A reader over <paramref name="result"/>; pass a connection to get CloseConnection behaviour.</summary>
    public FakeDbDataReader(FakeResult result, CommandBehavior behavior = CommandBehavior.Default, FakeDbConnection? connection = null)
    {
        ArgumentNullException.ThrowIfNull(result);
        _columns = result.Columns;
        _recordsAffected = result.RecordsAffected;
        _behavior = behavior;
        _connection = connection;

        IReadOnlyList<object[]> rows = result.Rows;
        if ((behavior & CommandBehavior.SchemaOnly) != 0)
        {
            rows = Array.Empty<object[]>();
        }
        else if ((behavior & CommandBehavior.SingleRow) != 0 && rows.Count > 1)
        {
            rows = new[] { rows[0] };
        }

        _rows = rows;
    }

    /// <summary>Convenience: a reader over the given columns and rows (null values become DBNull).</summary>
    public FakeDbDataReader(IReadOnlyList<FakeColumn> columns, IEnumerable<object?[]> rows, int recordsAffected = -1)
        : this(new FakeResult(columns, rows.Select(r => r.Select(v => v ?? DBNull.Value).ToArray()).ToArray(), recordsAffected))
    {
    }

    public override int Depth => 0;

    public override int FieldCount
    {
        get
        {
            ThrowIfClosed();
            return _hasResultSet ? _columns.Count : 0;
        }
    }

    public override bool HasRows
    {
        get
        {
            ThrowIfClosed();
            return _hasResultSet && _rows.Count > 0;
        }
    }

    public override bool IsClosed => _isClosed;

    public override int RecordsAffected => _recordsAffected;

    public override object this[int ordinal] => GetValue(ordinal);

    public override object this[string name] => GetValue(GetOrdinal(name));

    public override bool Read()
    {
        ThrowIfClosed();
        if (!_hasResultSet || _position >= _rows.Count)
        {
            return false;
        }

        _position++;
        return _position < _rows.Count;
    }

    public override Task<bool> ReadAsync(CancellationToken cancellationToken)
    {
        if (cancellationToken.IsCancellationRequested)
        {
            return Task.FromCanceled<bool>(cancellationToken);
        }

        try
        {
            return Read() ? TrueTask : FalseTask;
        }
        catch (Exception ex)
        {
            return Task.FromException<bool>(ex);
        }
    }

    public override bool NextResult()
    {
        ThrowIfClosed();
        _hasResultSet = false;
        _position = _rows.Count;
        return false;
    }

    public override Task<bool> NextResultAsync(CancellationToken cancellationToken)
    {
        if (cancellationToken.IsCancellationRequested)
        {
            return Task.FromCanceled<bool>(cancellationToken);
        }

        try
        {
            return NextResult() ? TrueTask : FalseTask;
        }
        catch (Exception ex)
        {
            return Task.FromException<bool>(ex);
        }
    }

    public override void Close()
    {
        if (_isClosed)
        {
            return;
        }

        _isClosed = true;
        if (_connection is not null)
        {
            _connection.UnregisterReader(this);
            if ((_behavior & CommandBehavior.CloseConnection) != 0)
            {
                _connection.Close();
            }
        }
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            Close();
        }

        base.Dispose(disposing);
    }

    public override string GetName(int ordinal) => Column(ordinal).Name;

    public override int GetOrdinal(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        ThrowIfClosed();
        for (int i = 0; i < _columns.Count; i++)
        {
            if (string.Equals(_columns[i].Name, name, StringComparison.Ordinal))
            {
                return i;
            }
        }

        for (int i = 0; i < _columns.Count; i++)
        {
            if (string.Equals(_columns[i].Name, name, StringComparison.OrdinalIgnoreCase))
            {
                return i;
            }
        }

        throw new IndexOutOfRangeException($"fake: no column named '{name}'.");
    }

    public override Type GetFieldType(int ordinal) => Column(ordinal).Type;

    public override string GetDataTypeName(int ordinal) => Column(ordinal).Type.Name;

    public override object GetValue(int ordinal)
    {
        Column(ordinal);
        if (_position < 0 || _position >= _rows.Count || !_hasResultSet)
        {
            throw new InvalidOperationException("fake: no current row; call Read() first.");
        }

        return _rows[_position][ordinal];
    }

    public override int GetValues(object[] values)
    {
        ArgumentNullException.ThrowIfNull(values);
        int count = Math.Min(values.Length, FieldCount);
        for (int i = 0; i < count; i++)
        {
            values[i] = GetValue(i);
        }

        return count;
    }

    public override bool IsDBNull(int ordinal) => GetValue(ordinal) is DBNull;

    public override bool GetBoolean(int ordinal) => Convert.ToBoolean(GetValue(ordinal), CultureInfo.InvariantCulture);

    public override byte GetByte(int ordinal) => Convert.ToByte(GetValue(ordinal), CultureInfo.InvariantCulture);

    public override char GetChar(int ordinal) => Convert.ToChar(GetValue(ordinal), CultureInfo.InvariantCulture);

    public override DateTime GetDateTime(int ordinal) => Convert.ToDateTime(GetValue(ordinal), CultureInfo.InvariantCulture);

    public override decimal GetDecimal(int ordinal) => Convert.ToDecimal(GetValue(ordinal), CultureInfo.InvariantCulture);

    public override double GetDouble(int ordinal) => Convert.ToDouble(GetValue(ordinal), CultureInfo.InvariantCulture);

    public override float GetFloat(int ordinal) => Convert.ToSingle(GetValue(ordinal), CultureInfo.InvariantCulture);

    public override Guid GetGuid(int ordinal) => GetValue(ordinal) switch
    {
        Guid g => g,
        string s => Guid.Parse(s, CultureInfo.InvariantCulture),
        object other => throw new InvalidCastException($"fake: cannot read {other.GetType().Name} as Guid."),
    };

    public override short GetInt16(int ordinal) => Convert.ToInt16(GetValue(ordinal), CultureInfo.InvariantCulture);

    public override int GetInt32(int ordinal) => Convert.ToInt32(GetValue(ordinal), CultureInfo.InvariantCulture);

    public override long GetInt64(int ordinal) => Convert.ToInt64(GetValue(ordinal), CultureInfo.InvariantCulture);

    public override string GetString(int ordinal) => GetValue(ordinal) switch
    {
        string s => s,
        DBNull => throw new InvalidCastException("fake: the value is NULL."),
        object other => Convert.ToString(other, CultureInfo.InvariantCulture) ?? string.Empty,
    };

    public override long GetBytes(int ordinal, long dataOffset, byte[]? buffer, int bufferOffset, int length) =>
        CopyChunk(GetValue(ordinal) as byte[] ?? throw new InvalidCastException("fake: the value is not a byte[]."), dataOffset, buffer, bufferOffset, length);

    public override long GetChars(int ordinal, long dataOffset, char[]? buffer, int bufferOffset, int length) =>
        CopyChunk(GetString(ordinal).ToCharArray(), dataOffset, buffer, bufferOffset, length);

    public override IEnumerator GetEnumerator() => new DbEnumerator(this, closeReader: false);

    private static readonly Task<bool> TrueTask = Task.FromResult(true);
    private static readonly Task<bool> FalseTask = Task.FromResult(false);

    private static long CopyChunk<T>(T[] source, long dataOffset, T[]? buffer, int bufferOffset, int length)
    {
        if (buffer is null)
        {
            return source.Length;
        }

        long available = Math.Max(0, source.Length - dataOffset);
        int count = (int)Math.Min(available, length);
        if (count > 0)
        {
            Array.Copy(source, dataOffset, buffer, bufferOffset, count);
        }

        return count;
    }

    private FakeColumn Column(int ordinal)
    {
        ThrowIfClosed();
        if (!_hasResultSet || ordinal < 0 || ordinal >= _columns.Count)
        {
            throw new IndexOutOfRangeException($"fake: no column at ordinal {ordinal.ToString(CultureInfo.InvariantCulture)}.");
        }

        return _columns[ordinal];
    }

    private void ThrowIfClosed()
    {
        if (_isClosed)
        {
            throw new InvalidOperationException("fake: the reader is closed.");
        }
    }

    /// <summary>Called when the connection closes under the reader.</summary>
    internal void CloseWithoutConnection() => _isClosed = true;
}
